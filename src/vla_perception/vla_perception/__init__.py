"""Camera sources, dense CLIP features and multi-view fusion into a 3D feature cloud."""
