"""Metrics: segmentation accuracy (StarDist matching, AP, SEG, Dice, boundary F1), image realism
(SSIM, PSNR, ZNCC, histogram distances, spectra, FID/KID) and statistics (rank-sum tests)."""
