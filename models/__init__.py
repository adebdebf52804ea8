"""Models, freezing strategies and compiled training steps for freezebench."""
