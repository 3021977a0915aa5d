"""A trained WaveGAN generator: sampling, save and load (CPU tensors, portable)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ...audio.resample import resample
from ...fsutil import atomic_write_bytes, atomic_write_text
from ..base import EngineError, Model
from .depth import DepthTable

log = logging.getLogger(__name__)

WEIGHTS = "wavegan-generator.pt"
SPEC = "wavegan.json"


class WaveGANModel(Model):
    engine = "wavegan"

    def __init__(
        self,
        mode: str,
        classes: list[str],
        lengths: dict[str, int],
        rate: int,
        meta: dict[str, Any] | None = None,
        *,
        spec: dict[str, Any],
        internal_rate: int,
        class_fracs: dict[str, list[float]],
        modes: dict[str, list[list[float]]] | None = None,
        depth: dict[str, DepthTable] | None = None,
    ):
        self.spec = dict(spec)
        # self-conditioning (modes.py): per class, [network label, weight] of each cluster
        self.modes = {c: [[int(a), float(b)] for a, b in v] for c, v in (modes or {}).items()}
        self.internal_rate = int(internal_rate)
        # classes with stepped cycles (cycle mode): draws quantised to their nearest training depth
        self.depth = dict(depth or {})
        self.class_fracs = {c: list(v) for c, v in class_fracs.items()}
        super().__init__(mode, classes, lengths, rate, meta)
        if not self.lengths:
            self.lengths = {
                c: self._out_len(max(self.class_fracs.get(c) or [1.0])) for c in self.classes
            }
        self._g = None

    def _out_len(self, frac: float) -> int:
        n = max(2, int(round(frac * self.spec["length"])))
        if self.mode == "cycle":
            return self.spec["length"]
        return max(2, int(round(n * self.rate / self.internal_rate)))

    def set_generator(self, g) -> None:
        g.eval()
        for p in g.parameters():
            p.requires_grad_(False)
        self._g = g

    def sample(self, n: int, cls: str | None = None, seed: int | None = None) -> list[np.ndarray]:
        from .networks import generate_internal

        cls = self.resolve_class(cls)
        label = self.classes.index(cls)
        if n <= 0:
            return []
        fracs = None
        if self.mode == "oneshot":
            pool = np.asarray(self.class_fracs.get(cls) or [1.0], dtype=np.float32)
            fracs = np.random.default_rng(seed).choice(pool, n).astype(np.float32)
        if self.modes.get(cls):
            raw = self._sample_modes(n, cls, seed)
        else:
            raw = generate_internal(self._g, n, label, fracs, seed)
        if self.mode == "cycle":
            if cls in self.depth:
                return self.depth[cls].apply(list(raw))
            return [w.astype(np.float32) for w in raw]
        out = []
        for w, f in zip(raw, fracs):
            used = w[: max(2, int(np.ceil(f * self.spec["length"])))]
            if self.internal_rate != self.rate:
                used = resample(used, self.internal_rate, self.rate)
            used = np.clip(np.asarray(used, dtype=np.float32), -1.0, 1.0)
            out.append(used)
        return out

    def _sample_modes(self, n: int, cls: str, seed: int | None) -> list[np.ndarray]:
        """Cycle mode, a self-conditioned class: ``n`` draws shared among its clusters in their
        training proportions, in a random order."""
        from .networks import generate_clusters

        rng = np.random.default_rng(seed)
        out = generate_clusters(
            self._g,
            n,
            self.modes[cls],
            rng,
            lambda j, _label: None if seed is None else seed + 7919 * (j + 1),
        )
        return list(out[rng.permutation(len(out))])

    def _save_files(self, folder: Path) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self._g.state_dict().items()}, buf)
        atomic_write_bytes(folder / WEIGHTS, buf.getvalue())
        atomic_write_text(
            folder / SPEC,
            json.dumps(
                {
                    "spec": self.spec,
                    "internal_rate": self.internal_rate,
                    "class_fracs": self.class_fracs,
                    **({"modes": self.modes} if self.modes else {}),
                    **(
                        {"depth": {c: t.to_dict() for c, t in self.depth.items()}}
                        if self.depth
                        else {}
                    ),
                },
                indent=1,
                sort_keys=True,
            ),
        )

    @classmethod
    def _load_files(cls, folder: Path, header: dict[str, Any]) -> "WaveGANModel":
        import torch

        from .generators import generator_from_spec

        try:
            extra = json.loads((folder / SPEC).read_text(encoding="utf-8"))
            spec = extra["spec"]
            depth = {c: DepthTable.from_dict(d) for c, d in extra.get("depth", {}).items()}
            state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise EngineError(
                f"{folder}: incomplete wavegan model ({Path(exc.filename).name} missing)"
            ) from None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EngineError(f"{folder}: unreadable wavegan model ({exc})") from None
        model = cls(
            header["mode"],
            header["classes"],
            header.get("lengths", {}),
            header["rate"],
            header.get("meta", {}),
            spec=spec,
            internal_rate=extra["internal_rate"],
            class_fracs=extra.get("class_fracs", {}),
            modes=extra.get("modes"),
            depth=depth,
        )
        g = generator_from_spec(spec)
        try:
            g.load_state_dict(state)
        except RuntimeError as exc:
            raise EngineError(
                f"{folder}: weights do not match the stored network description ({exc})"
            ) from None
        model.set_generator(g)
        model.folder = folder
        return model
