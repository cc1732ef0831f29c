"""Media in and out: listing, decoding (orientation, bit depth, alpha, limits), encoding, atomic writing."""
