"""cpgait: edge inference toolkit for video-based gait assessment of children with cerebral palsy.

Research software. Models trained by this project are trained on synthetic data and are not clinically valid.
"""

__version__ = "0.1.0"
