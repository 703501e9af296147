"""A generic HTTP target (``http_post``): records projected to the target's shape, POSTed as JSON arrays."""
