"""Explaining CNN decisions: attribution methods (Captum), occlusion maps, rendering."""
