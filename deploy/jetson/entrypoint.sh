#!/bin/sh
# The container's command: the kiosk on the camera in $CPGAIT_CAMERA with TensorRT; extra arguments are passed on.
exec cpgait kiosk --data-dir /data --backend trt --host 127.0.0.1 --port 8080 --camera "$CPGAIT_CAMERA" "$@"
