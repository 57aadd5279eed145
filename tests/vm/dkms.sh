# Guest job: the module DKMS built (scripts/dkms-build.sh installed it into the kernel's module
# tree, CXMQ_MODROOT): modinfo finds it under updates/dkms with dkms.conf's version
# (CXMQ_DKMS_VERSION); `modprobe cxmq` loads configfs first when it is not loaded (a bare insmod
# would fail with "Unknown symbol config_group_init"); then the integration job, every load a
# modprobe (CXMQ_LOAD=modprobe).
. "$CXMQ_ROOT/tests/vm/lib.sh"
minfo() { modinfo -b "$CXMQ_MODROOT" -k "$CXMQ_KABI" -F "$1" cxmq; }
check "modinfo: cxmq is the DKMS-built module in updates/dkms ($(minfo filename))" \
	sh -c "modinfo -b '$CXMQ_MODROOT' -k '$CXMQ_KABI' -F filename cxmq | grep -q /updates/dkms/cxmq.ko"
check "modinfo: version ${CXMQ_DKMS_VERSION:?} ($(minfo version))" test "$(minfo version)" = "$CXMQ_DKMS_VERSION"
if [ -e /sys/module/configfs/initstate ]; then # configfs is a module here (Debian's kernel)
	umount /sys/kernel/config
	check "configfs unloaded (the guest's init loaded and mounted it)" rmmod configfs
	check "modprobe cxmq: loads configfs, then cxmq" sh -c \
		"modprobe -d '$CXMQ_MODROOT' -S '$CXMQ_KABI' cxmq && test -e /sys/module/configfs && test -b /dev/cxmq0"
	mount -t configfs configfs /sys/kernel/config
	check "cxmq's configfs directory is there" test -d /sys/kernel/config/cxmq
	check "rmmod cxmq" rmmod cxmq
fi
CXMQ_LOAD=modprobe bash "$CXMQ_ROOT/tests/vm/integration.sh"; rc=$?
[ "$FAILED" -eq 0 ] || exit 1
exit $rc
