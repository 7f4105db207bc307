{
  "targets": [
    {
      "target_name": "sigil_relay",
      "sources": ["relay.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
