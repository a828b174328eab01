"""The live loop's stages: capture, subject tracking, smoothing, the gait session, the threaded pipeline, overlay,
events and the window recorder."""
