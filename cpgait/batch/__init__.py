"""`cpgait batch`: re-score a folder or manifest of recorded walks on Ray with the kiosk's own stages."""
