/* mb-smp - brings up every CPU fw_cfg's NB_CPUS counts: INIT-SIPI-SIPI to
 * all but itself through the LAPIC (0xfee00000), the APs starting in real
 * mode at a trampoline at 0x7000 that switches to protected mode; each AP
 * records its LAPIC ID. Prints the BSP's and the APs' IDs (sorted), exits 0
 * when all came up, 0x72 when some did not. */
#include "mb.h"

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    uint16_t cpus;
    fw_cfg_select(FW_CFG_NB_CPUS);
    fw_cfg_read(&cpus, 2);
    lapic_enable();
    put_str("smp"); put_kv_dec("nb_cpus", cpus); put_kv_dec("bsp_apic_id", lapic_id()); put_str("\n");
    uint32_t up = cpus > 1 ? smp_start_aps(0x7000, cpus - 1u) : 0;
    uint32_t ids[256];
    for (uint32_t i = 0; i < up && i < 256; i++) ids[i] = smp_ap_ids[i];
    for (uint32_t i = 1; i < up && i < 256; i++)        /* insertion sort */
        for (uint32_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) { uint32_t t = ids[j]; ids[j] = ids[j - 1]; ids[j - 1] = t; }
    for (uint32_t i = 0; i < up && i < 256; i++) { put_str("ap"); put_kv_dec("apic_id", ids[i]); put_str("\n"); }
    put_str("smp"); put_kv_dec("cpus_up", up + 1); put_str(up + 1 == cpus ? " ok\n" : " MISSING\n");
    return up + 1 == cpus ? 0 : 0x72;
}
