"""``miragen demo``: the whole pipeline on the embedded default corpus, no hardware needed.

The demo is a *client* of the daemon: it makes a studio folder, starts the real daemon
(:class:`miragen.service.daemon.Daemon`) on it, and then asks the daemon's records what
happened (``miragen status``'s view, the job queue, the request records); it never works out
for itself what the daemon decided. So it sits above :mod:`miragen.service`.

What it does, in order (each a *stage* with its own time and ``ok``, :mod:`.stages`):

1. ``setup``: makes the studio state folder ``DIR`` (the daemon's layout, see docs/daemon.md),
   writes the embedded corpus (:func:`miragen.corpus.synth.write_default_corpus`: four classes
   of single cycles and ``hits``, a class of one-shots) into ``DIR/inbox/<class>/`` and one
   request per class into ``DIR/requests/``, starts a simulated Mirage as a separate process
   (:mod:`.sim`, ``miragen sim --pty --state DIR/sim-state.json``) and writes the
   configuration the daemon runs with (:mod:`.settings`): the embedded default with
   ``paths.state = DIR``, ``train.oneshot_classes = "hits"``, ``deliver.route = "both"``,
   ``deliver.transport = "serial:<the sim's pty>"``, ``deliver.verify = true`` and a training
   budget of ``seconds / rounds`` per class (the classes train two at a time, ``train.workers``,
   so five classes take three rounds), with the engine's own options.
   ``DIR/miragen.toml`` keeps it for reruns of ``miragen daemon --config DIR/miragen.toml``
   (with ``transport = "sim"``, because the pty dies with the demo).
2. ``daemon``: the real daemon, in this process, until idle: ingest → a training run per class
   (+ the daemon's held-out judge) → each request as soon as its class has a model (so a
   class's sound is made while the next class trains): candidates → candidate gate → Mirage
   8-bit → SysEx dump over the pty (ACK, read-back) and a disk image per request. Then the
   daemon's records say which model serves each class, how many sounds it was trained on and
   how many were held out, and each request's candidates (best first) and the one delivered
   (:mod:`.facts`).
3. ``judge``: the daemon's verdict on each serving model.
4. ``disk``: ``DIR/out/demo.img`` from the synthetic template, class *i*'s delivered candidate
   in wavesample *i* of ``lower1`` (a single cycle tiled to fill the 32-page slot,
   :func:`miragen.audio.loops.tile_cycle`; a one-shot once, silence after it), with
   FlashFloppy's ``IMG.CFG`` beside it.
5. ``previews``: ``DIR/out/previews/<class>.wav`` (a delivered cycle looped for one second, a
   delivered one-shot as it is), ``<class>.png`` and ``DIR/out/contact-sheet.png`` (every kept
   candidate, best first).
6. ``check``: the image parses and holds the bytes written, the simulated Mirage's state file
   holds every delivered wavesample, every ``.pcm`` follows the Mirage 8-bit rules.

The judge's verdict is reported per class (pass, fail or inconclusive, with its reasons).
Judging is a stage that succeeds when it runs and gives a verdict for every class; a *fail*
verdict does not fail the demo (a one-minute CPU budget rarely trains a model that passes), but
the summary (:mod:`.summary`) says so plainly.

Rerunning in the same ``DIR``: a folder that holds the marker file
:data:`~.folder.MARKER` (written by the demo) is cleaned of the demo's own entries
(:data:`~.folder.OWNED`) and started afresh; anything else in it is left alone. A non-empty
folder without the marker is refused (:mod:`.folder`).

:func:`.run.run_demo` runs it all and returns the summary; :func:`.summary.format_summary`
prints it for people.
"""
