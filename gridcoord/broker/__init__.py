"""The broker's access files, generated from the asset list (DESIGN 3.6a).

`passwd` hashes Mosquitto's way, `acl` says who may publish or read which topic, `files`
writes them (with the credentials and a `mosquitto.conf`) for `gridcoord broker-config` and for
the loopback broker `gridcoord run` and `gridcoord demo` start themselves.
"""
