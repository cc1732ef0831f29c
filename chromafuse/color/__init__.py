"""Colour science: sRGB <-> CIE Lab in torch (``lab``), the full-resolution numpy/OpenCV join (``srgb``,
``fullres``) and the CIEDE2000 colour difference (``delta_e``)."""
