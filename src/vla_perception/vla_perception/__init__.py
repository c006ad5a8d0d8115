# SPDX-License-Identifier: Apache-2.0
"""Camera sources, dense CLIP features and multi-view fusion into a 3D feature cloud."""
