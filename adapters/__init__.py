"""Southbound protocol adapters: wire data in, validated readings out; setpoints back out."""
