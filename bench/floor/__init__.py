"""The floor: the thinnest aiohttp hello -> response pair with the same mTLS hop as Firedrill's."""
