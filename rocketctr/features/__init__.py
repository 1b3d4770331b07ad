"""What the model makes of raw columns: schemas, the statistics pass, the feature format."""
