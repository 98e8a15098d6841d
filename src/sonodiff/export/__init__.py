"""The export stage: what leaves sonodiff for other tools.

``sonodiff.export`` writes each trained model as a folder others load with ``safetensors`` alone
(the folder's format is ``sonodiff.contracts.model_folder``), with a model card:

    from sonodiff.export.model import export_model
    export_model("results/models/camus/bmaps/model.pt", "results/export/models/camus/bmaps",
                 dataset_info_path=..., metrics_record_path=..., train_log_path=..., cfg=job_cfg)

:mod:`~sonodiff.export.model` loads the model file and writes the folder;
:mod:`~sonodiff.export.model_card` writes the card (``README.md``, Hugging Face model-card style:
front matter with the licence, the model, training data, training, metrics with 95% intervals,
intended use, the data's licence, how to load). ``docs/sharing.md`` is the user's guide.
"""
