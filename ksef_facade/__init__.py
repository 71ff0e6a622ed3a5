"""KSeF 2.0 client: a facade over the generated API client."""

__all__: list[str] = []
