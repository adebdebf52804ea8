"""pytest-benchmark cases for freezebench and the harness around them."""
