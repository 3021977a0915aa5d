"""Pure signal code: decode anything we accept, resample, quantise to Mirage 8-bit, loops,
pictures and the seed article's bitmap representation. See docs/audio.md.

Modules: ``io`` (read_audio, write_pcm, write_wav_u8), ``resample``, ``mirage8`` (the one
quantiser), ``convert`` (file → Mirage-ready bytes → .pcm/.wav/.png), ``render``, ``loops``,
``bitmap``. Nothing here imports the service, transport or engine packages.
"""
