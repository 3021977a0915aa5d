"""The use cases that the command line, the daemon and the demo share, each written once.

- :mod:`.disk`: a sound into a Mirage disk image (template, single-cycle tiling, the image
  beside FlashFloppy's IMG.CFG, the copy to the Gotek's USB stick);
- :mod:`.sysex`: the body of a SysEx wavesample dump (single-cycle tiling).

Layers (checked by import-linter, docs/architecture.md): ``cli`` → ``commands`` →
``service`` → ``app`` → ``engines`` → ``judge`` → ``corpus`` → ``transport``/``mirage``/
``audio``/``config`` → ``fsutil``/``limits``/``errors``.
"""
