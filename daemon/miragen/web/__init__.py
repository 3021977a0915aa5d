"""``miragen web``: the studio page on the local network (docs/web.md).

A process of its own beside the daemon: it reads the daemon's state folder and changes it only
through the daemon's own doors (the drop folder, request files, the learned-triggers file).
"""
