"""Placeholder images: rendering, the signed tokens in image URLs, memory."""
