"""``sr-bench``: quality (Y-PSNR / Y-SSIM) and latency of models on a dataset, reports, and the regression gate."""
