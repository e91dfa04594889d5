from django.apps import AppConfig


class ModelworkerConfig(AppConfig):
    name = "modelworker"
    verbose_name = "Model worker"
    # Deliberately no ready(): loading a model there would make `migrate` load torch.
