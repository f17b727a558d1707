"""auth: issues JWTs for users stored with argon2 hashes, and validates them."""
