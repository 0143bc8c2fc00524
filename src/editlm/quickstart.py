"""``editlm quickstart``: the main job on the embedded default data (filled in as stages land)."""

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def quickstart() -> None:
        """Run the whole pipeline on the embedded default data with a tiny model."""
        typer.echo("editlm quickstart: no stages yet")
