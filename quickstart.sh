#!/usr/bin/env bash
# A working cloud on this machine in one command: builds yunji, installs the openstack
# CLI into a virtualenv, and runs the scheduler with one local agent until Ctrl-C.
#
#   YUNJI_DATA_DIR  where the cloud keeps its state   (default ~/.local/share/yunji)
#   YUNJI_LISTEN    the API's address                  (default 127.0.0.1:8443)
#   YUNJI_DRIVER    auto (real drivers where the node offers them) or sim
set -euo pipefail
cd "$(dirname "$0")"

data_dir=${YUNJI_DATA_DIR:-$HOME/.local/share/yunji}
venv=${YUNJI_VENV:-$PWD/target/venv}

echo "--- building yunji (release)"
cargo build --release --bins --locked

if [ "$(id -u)" = 0 ] && [ "${YUNJI_DRIVER:-auto}" != sim ]; then
    echo "--- installing QEMU and building the test image (real VMs)"
    bash tests/image/install-packages.sh
    test_image=$(bash tests/image/build.sh)
fi

echo "--- installing the openstack CLI into $venv"
bash tests/clients/setup-venv.sh "$venv" >/dev/null

cat <<MSG
--- starting yunji: state in $data_dir
    In another shell, once it says "listening":
      export OS_CLIENT_CONFIG_FILE=$data_dir/clouds.yaml OS_CLOUD=yunji
      $venv/bin/openstack catalog list     # or: target/release/yunji datacenter list
    The admin password is in $data_dir/admin-password.
MSG
if [ -n "${test_image:-}" ]; then
    cat <<MSG
    A first image to boot (a 10 MB test VM; its console shows YUNJI-BOOT-OK):
      $venv/bin/openstack image create --public --disk-format qcow2 --file $test_image yunji-test
      $venv/bin/openstack flavor create --vcpus 1 --ram 128 --disk 1 tiny
      $venv/bin/openstack server create --image yunji-test --flavor tiny vm-1
      $venv/bin/openstack console log show vm-1
    or the same with yunji's own CLI:
      target/release/yunji image create yunji-test --visibility public --file $test_image
      target/release/yunji flavor create tiny --vcpus 1 --ram 128 --disk 1
      target/release/yunji server create vm-1 --image yunji-test --flavor tiny --wait
      target/release/yunji server console vm-1
MSG
fi
exec target/release/yunji-scheduler --data-dir "$data_dir" --local-agents "${YUNJI_LOCAL_AGENTS:-1}" \
    --driver "${YUNJI_DRIVER:-auto}" ${YUNJI_LISTEN:+--listen "$YUNJI_LISTEN"}
