"""A real RTSP server on localhost serving a video file (Debian's GStreamer RTSP server), for the stream-fault tests.

Run by the system python3 (it needs python3-gst-1.0 and gir1.2-gst-rtsp-server-1.0, which the Makefile's CI step
installs): `python3 rtsp_server.py CLIP PORT`. Each client gets the clip from its start, decoded (VP9 or H.264 in an
MP4), scaled to 640x360 and re-encoded as H.264 (x264enc, gstreamer1.0-plugins-ugly), paced at its frame rate. It
prints "ready" once it listens and serves until it is terminated.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! decodebin ! videoconvert ! videoscale ! '
        "video/x-raw,width=640,height=360 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/walk", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
