# Uncertainty: the product model's error model, calibrated on the validation split of the
# sample set (avhrrsm.learn.uncertainty): the standard error of every error class (the day's
# inputs, outside the training range, short history, wetness), which inference looks up for
# every pixel-day. Written beside the model: models/{model}/L{length}/uncertainty.json.


rule uncertainty_calibration:
    input:
        samples=run_path("samples", "samples.zarr"),
        model=product_model_file(),
    output:
        uncertainty_model_file(),
    log:
        log_path("uncertainty_calibration"),
    benchmark:
        benchmark_path("uncertainty_calibration")
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("uncertainty_calibration")
    resources:
        mem_mb=request_mem_mb("uncertainty_calibration"),
        runtime=request_runtime("uncertainty_calibration"),
    params:
        code=code_version("uncertainty_calibration"),
        uncertainty=config["uncertainty"],
        valid_range=config["product"]["valid_range"],
        device=config["inference"]["device"],
    message:
        "Calibrate the uncertainty of {input.model} on the validation split [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/uncertainty_calibration.py"
