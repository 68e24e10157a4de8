"""Looking inside CNNs: layer tables (shapes, receptive fields, parameters, MACs)."""
