from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modelworker import registry


class Command(BaseCommand):
    help = "Register a local model directory (Hugging Face format) or GGUF file on this machine."

    def add_arguments(self, parser):
        parser.add_argument("model_id", help="short id used by the API, e.g. my-tiny-model")
        parser.add_argument("path", help="a model directory with config.json, or a .gguf file")
        parser.add_argument("--name", default=None)
        parser.add_argument("--description", default="")
        parser.add_argument("--parameters", default="")

    def handle(self, model_id, path, name, description, parameters, **options):
        path = Path(path).resolve()
        if path.is_file() and path.suffix == ".gguf":
            source = {"type": "gguf", "path": str(path)}
        elif (path / "config.json").is_file():
            source = {"type": "local", "path": str(path)}
        else:
            raise CommandError(f"{path} is neither a .gguf file nor a model directory with config.json")
        entry = {
            "id": model_id,
            "name": name or model_id,
            "description": description,
            "parameters": parameters,
            "source": source,
        }
        registry.register(entry)
        self.stdout.write(self.style.SUCCESS(f"Registered {model_id} from {path} in {registry.registry_file()}"))
