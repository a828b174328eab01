"""The applications on top of the live loop: `cpgait run` (live assessment) and `cpgait pose` (recording)."""
