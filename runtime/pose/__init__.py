"""Pose models: the `PoseModel` protocol, BlazePose and MoveNet as numpy pipelines around runners."""
