"""pretrain, individual, finetune and grid search: compose data, model, engine and tracking."""
