"""From a stored network description (``train.network_spec``) to the generator it asks for:
the one place that turns the description into a network, for the trainer and the saved model.
Imports torch (load it when a model is trained or sampled)."""

from __future__ import annotations

from torch import nn

from .networks import Generator
from .spectro import SpecGenerator
from .synth import SynthGenerator

# the one-shot designs whose networks run at the frame rate (synth.py, spectro.py); each hears
# the sound through synth.SpecDiscriminator and needs at least four frames (data.SYNTH_LENGTHS)
FRAME_RATE_DESIGNS: dict[str, type[nn.Module]] = {"synth": SynthGenerator, "spec": SpecGenerator}


def generator_from_spec(spec: dict) -> nn.Module:
    """The generator a stored network description (``train.network_spec``) asks for: the one
    place that turns the description into a network, for the trainer and the saved model."""
    frame_rate_design = FRAME_RATE_DESIGNS.get(spec["output"])
    if frame_rate_design is not None:
        return frame_rate_design(
            spec["length"],
            spec["n_classes"],
            rate=spec["rate"],
            z_dim=spec["z_dim"],
            width=spec["width"],
        )
    return Generator(
        spec["length"],
        spec["n_classes"],
        mode=spec["mode"],
        output=spec["output"],
        z_dim=spec["z_dim"],
        width=spec["width"],
        transpose=spec["transpose"],
    )
