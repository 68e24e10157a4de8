"""Engines other than the local generator (``cvtasks.engine``): Ray Data in ``ray_data``.

Nothing outside ``cvtasks.engines.ray_data`` imports ray, and that module is imported only
for ``--engine ray``.
"""
