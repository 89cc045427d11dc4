"""Carrier media-stream protocols (Sans-I/O) and their asyncio glue."""
