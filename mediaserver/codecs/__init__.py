"""G.711 codecs and PCM16 framing."""
