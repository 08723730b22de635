/* test_nx_io.c: node_exporter's storage and network collectors (diskstats,
 * filesystem, netdev, netclass, arp, bonding, netstat, sockstat, softnet,
 * conntrack, udp_queues, nvme, mdadm, infiniband, bcache, btrfs, xfs) run
 * through sense_nx_open / sense_nx_render over the fixture trees in
 * fixtures/nx/io (proc, sys and udev's database), checked line by line
 * against what node_exporter 1.5 prints for the same files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/sense.h"
#include "nx_test_util.h"
#include "tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Renders the exposition over fixtures/nx/io/<tree> roots. */
static char *render_roots(const char *proc, const char *sys, const char *udev)
{
    char p[512], y[512], u[512];
    snprintf(p, sizeof p, "%s/nx/io/%s", fixtures_dir(), proc);
    snprintf(y, sizeof y, "%s/nx/io/%s", fixtures_dir(), sys);
    snprintf(u, sizeof u, "%s/nx/io/%s", fixtures_dir(), udev);
    return nxt_render(p, y, u, NULL);
}

static char *render(void)
{
    return render_roots("proc", "sys", "udev");
}

#define LINE(out, l) \
    do { \
        if (!nxt_has_line(out, l)) \
            fail_msg("missing line: %s", l); \
    } while (0)
#define NO(out, s) \
    do { \
        if (strstr(out, s)) \
            fail_msg("unexpected: %s", s); \
    } while (0)

/* The value of the sample whose text before the value is `series`; fails
 * the test when there is none. */
static double value_of(const char *out, const char *series)
{
    double v = nxt_value(out, series);
    if (isnan(v))
        fail_msg("missing series: %s", series);
    return v;
}

static void test_diskstats(void **state)
{
    (void)state;
    char *o = render();
    LINE(o, "# TYPE node_disk_reads_completed_total counter");
    LINE(o, "# TYPE node_disk_io_now gauge");
    LINE(o, "node_disk_reads_completed_total{device=\"sda\"} 25354637");
    LINE(o, "node_disk_read_bytes_total{device=\"sda\"} 513713216512");       /* sectors * 512 */
    LINE(o, "node_disk_read_time_seconds_total{device=\"sda\"} 18492.372");    /* ms -> s */
    LINE(o, "node_disk_written_bytes_total{device=\"sda\"} 613324085248");
    LINE(o, "node_disk_io_time_weighted_seconds_total{device=\"sda\"} 124255.3");
    LINE(o, "node_disk_discards_completed_total{device=\"sda\"} 4");
    LINE(o, "node_disk_discarded_sectors_total{device=\"sda\"} 2464");         /* not scaled */
    LINE(o, "node_disk_flush_requests_total{device=\"sda\"} 23");
    LINE(o, "node_disk_flush_requests_time_seconds_total{device=\"sda\"} 0.11800000000000001"); /* as Go prints 118 * 0.001 */
    /* an old kernel's 11 fields: no discard or flush families for it */
    LINE(o, "node_disk_io_time_weighted_seconds_total{device=\"sdb\"} 67.07000000000001");
    NO(o, "node_disk_discards_completed_total{device=\"sdb\"}");
    NO(o, "node_disk_flush_requests_total{device=\"nvme0n1\"}");
    LINE(o, "node_disk_discard_time_seconds_total{device=\"nvme0n1\"} 0");
    /* default device-exclude: partitions, loop; not dm-0, sr0, whole disks */
    NO(o, "node_disk_info{device=\"sda1\"");
    NO(o, "node_disk_reads_completed_total{device=\"sda1\"}");
    NO(o, "device=\"loop0\"");
    NO(o, "device=\"nvme0n1p1\"");
    LINE(o, "node_disk_reads_completed_total{device=\"sr0\"} 1");
    /* node_disk_info from udev's database */
    LINE(o, "# TYPE node_disk_info gauge");
    LINE(o, "node_disk_info{device=\"sda\",major=\"8\",minor=\"0\",path=\"pci-0000:00:1f.2-ata-1\","
            "wwn=\"0x500080d3b15bff7a\",model=\"TOSHIBA_KSG60ZMV256G_M.2_2280_256GB\",serial=\"583B83NWK5SP\","
            "revision=\"ADHA0101\"} 1");
    LINE(o, "node_disk_info{device=\"nvme0n1\",major=\"259\",minor=\"0\",path=\"pci-0000:02:00.0-nvme-1\","
            "wwn=\"eui.p3vbbiejx5aae2r3\",model=\"SAMSUNG EHFTF55LURSY-000Y9\",serial=\"S252B6CU1HG3M1\","
            "revision=\"4QXOS7UX\"} 1");
    LINE(o, "node_disk_info{device=\"sdb\",major=\"8\",minor=\"16\",path=\"\",wwn=\"\",model=\"\",serial=\"\","
            "revision=\"\"} 1");
    LINE(o, "node_disk_ata_write_cache{device=\"sda\"} 1");
    LINE(o, "node_disk_ata_write_cache_enabled{device=\"sda\"} 1");
    LINE(o, "node_disk_ata_rotation_rate_rpm{device=\"sda\"} 0");
    LINE(o, "node_disk_filesystem_info{device=\"dm-0\",type=\"ext4\",usage=\"filesystem\","
            "uuid=\"b7e4f8a2-6a4e-4a4f-9a7b-1c2d3e4f5a6b\",version=\"1.0\"} 1");
    LINE(o, "node_disk_device_mapper_info{device=\"dm-0\",name=\"nvme0n1_crypt\","
            "uuid=\"CRYPT-LUKS2-jolaulot80fy9zsiobkxyxo7y2dqeho2-nvme0n1_crypt\",vg_name=\"\",lv_name=\"\","
            "lv_layer=\"\"} 1");
    LINE(o, "node_scrape_collector_success{collector=\"diskstats\"} 1");
    free(o);
    /* no udev database: node_disk_info keeps its labels, empty */
    o = render_roots("proc", "sys", "no-such-udev");
    LINE(o, "node_disk_info{device=\"sda\",major=\"8\",minor=\"0\",path=\"\",wwn=\"\",model=\"\",serial=\"\","
            "revision=\"\"} 1");
    NO(o, "node_disk_ata_");
    free(o);
}

static void test_filesystem(void **state)
{
    (void)state;
    char *o = render();
    struct statvfs root, usr;
    assert_int_equal(statvfs("/", &root), 0);
    assert_int_equal(statvfs("/usr", &usr), 0);
    LINE(o, "# TYPE node_filesystem_size_bytes gauge");
    LINE(o, "node_filesystem_device_error{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"} 0");
    LINE(o, "node_filesystem_readonly{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"} 0");
    assert_true(value_of(o, "node_filesystem_size_bytes{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"}") ==
                (double)root.f_blocks * (double)root.f_bsize);
    assert_true(value_of(o, "node_filesystem_files{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"}") ==
                (double)root.f_files);
    (void)value_of(o, "node_filesystem_avail_bytes{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"}");
    (void)value_of(o, "node_filesystem_free_bytes{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"}");
    (void)value_of(o, "node_filesystem_files_free{device=\"/dev/fake1\",fstype=\"ext4\",mountpoint=\"/\"}");
    /* the duplicate mount line comes out once */
    const char *first = strstr(o, "node_filesystem_device_error{device=\"/dev/fake1\"");
    assert_null(strstr(first + 1, "node_filesystem_device_error{device=\"/dev/fake1\""));
    /* ro from the mount options */
    LINE(o, "node_filesystem_readonly{device=\"/dev/fake3\",fstype=\"ext4\",mountpoint=\"/usr\"} 1");
    assert_true(value_of(o, "node_filesystem_size_bytes{device=\"/dev/fake3\",fstype=\"ext4\",mountpoint=\"/usr\"}") ==
                (double)usr.f_blocks * (double)usr.f_bsize);
    /* statfs failures: device_error 1 and nothing else (1.5 reports
     * readonly only for mounts it could stat); \040 decoded */
    LINE(o, "node_filesystem_device_error{device=\"/dev/sdb1\",fstype=\"ext4\",mountpoint=\"/srv/my data\"} 1");
    NO(o, "node_filesystem_readonly{device=\"/dev/sdb1\"");
    NO(o, "node_filesystem_size_bytes{device=\"/dev/sdb1\"");
    /* a remote mount goes through the timed stat and still reports */
    LINE(o, "node_filesystem_device_error{device=\"server:/export\",fstype=\"nfs4\","
            "mountpoint=\"/nonexistent-ippoc-nfs\"} 1");
    /* ... and answers like a local one when it does */
    LINE(o, "node_filesystem_device_error{device=\"me@host:/\",fstype=\"fuse.sshfs\",mountpoint=\"/usr\"} 0");
    LINE(o, "node_filesystem_readonly{device=\"me@host:/\",fstype=\"fuse.sshfs\",mountpoint=\"/usr\"} 1");
    assert_true(value_of(o, "node_filesystem_files{device=\"me@host:/\",fstype=\"fuse.sshfs\",mountpoint=\"/usr\"}") ==
                (double)usr.f_files);
    /* default excludes: mount points and types */
    NO(o, "mountpoint=\"/proc\"");
    NO(o, "mountpoint=\"/sys");
    NO(o, "mountpoint=\"/dev\"");
    NO(o, "mountpoint=\"/run/credentials");
    NO(o, "fstype=\"overlay\"");
    LINE(o, "node_filesystem_device_error{device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/run\"} 0");
    /* /proc/1/mounts is preferred to /proc/mounts */
    NO(o, "/dev/wrong");
    free(o);
}

static void test_netdev_netclass(void **state)
{
    (void)state;
    char *o = render();
    LINE(o, "# TYPE node_network_receive_bytes_total counter");
    LINE(o, "node_network_receive_bytes_total{device=\"eth0\"} 10");
    LINE(o, "node_network_receive_packets_total{device=\"eth0\"} 20");
    LINE(o, "node_network_receive_errs_total{device=\"eth0\"} 30");
    LINE(o, "node_network_receive_drop_total{device=\"eth0\"} 40");
    LINE(o, "node_network_receive_fifo_total{device=\"eth0\"} 50");
    LINE(o, "node_network_receive_frame_total{device=\"eth0\"} 60");
    LINE(o, "node_network_receive_compressed_total{device=\"eth0\"} 70");
    LINE(o, "node_network_receive_multicast_total{device=\"eth0\"} 80");
    LINE(o, "node_network_receive_nohandler_total{device=\"eth0\"} 90");
    LINE(o, "node_network_transmit_bytes_total{device=\"eth0\"} 100");
    LINE(o, "node_network_transmit_packets_total{device=\"eth0\"} 110");
    LINE(o, "node_network_transmit_errs_total{device=\"eth0\"} 120");
    LINE(o, "node_network_transmit_drop_total{device=\"eth0\"} 130");
    LINE(o, "node_network_transmit_fifo_total{device=\"eth0\"} 140");
    LINE(o, "node_network_transmit_colls_total{device=\"eth0\"} 150");
    LINE(o, "node_network_transmit_carrier_total{device=\"eth0\"} 160");
    LINE(o, "node_network_transmit_compressed_total{device=\"eth0\"} 170");
    NO(o, "length_errors");
    LINE(o, "node_network_receive_bytes_total{device=\"lo\"} 0"); /* node_exporter excludes nothing */
    LINE(o, "node_network_receive_bytes_total{device=\"bond0\"} 1099511627776");
    NO(o, "device=\"bonding_masters\"");
    /* netclass */
    LINE(o, "# TYPE node_network_up gauge");
    LINE(o, "node_network_up{device=\"eth0\"} 1");
    LINE(o, "node_network_up{device=\"lo\"} 0");
    LINE(o, "node_network_info{device=\"eth0\",address=\"01:01:01:01:01:01\",broadcast=\"ff:ff:ff:ff:ff:ff\","
            "duplex=\"full\",operstate=\"up\",ifalias=\"\"} 1");
    LINE(o, "node_network_info{device=\"bond0\",address=\"02:00:00:00:00:01\",broadcast=\"ff:ff:ff:ff:ff:ff\","
            "duplex=\"\",operstate=\"down\",ifalias=\"uplink \\\"a\\\"\"} 1");
    LINE(o, "node_network_flags{device=\"eth0\"} 4867");       /* 0x1303 */
    LINE(o, "node_network_device_id{device=\"eth0\"} 32");     /* 0x20 */
    LINE(o, "node_network_speed_bytes{device=\"eth0\"} 125000000");
    LINE(o, "node_network_speed_bytes{device=\"bond0\"} -125000"); /* -1: unknown, kept as node_exporter does */
    NO(o, "node_network_speed_bytes{device=\"lo\"}");
    LINE(o, "# TYPE node_network_carrier_changes_total counter");
    LINE(o, "node_network_carrier_changes_total{device=\"eth0\"} 2");
    LINE(o, "node_network_carrier_up_changes_total{device=\"eth0\"} 1");
    LINE(o, "node_network_carrier_down_changes_total{device=\"eth0\"} 1");
    LINE(o, "node_network_address_assign_type{device=\"eth0\"} 3");
    LINE(o, "node_network_dormant{device=\"eth0\"} 1");
    LINE(o, "node_network_iface_id{device=\"eth0\"} 2");
    LINE(o, "node_network_iface_link{device=\"eth0\"} 2");
    LINE(o, "node_network_iface_link_mode{device=\"eth0\"} 1");
    LINE(o, "node_network_mtu_bytes{device=\"lo\"} 65536");
    LINE(o, "node_network_name_assign_type{device=\"eth0\"} 2");
    LINE(o, "node_network_net_dev_group{device=\"eth0\"} 0");
    LINE(o, "node_network_transmit_queue_length{device=\"eth0\"} 1000");
    LINE(o, "node_network_protocol_type{device=\"lo\"} 772");
    LINE(o, "node_network_carrier{device=\"lo\"} 1");
    NO(o, "node_network_carrier{device=\"bond0\"}");
    free(o);
}

static void test_arp_bonding(void **state)
{
    (void)state;
    char *o = render();
    LINE(o, "# TYPE node_arp_entries gauge");
    LINE(o, "node_arp_entries{device=\"eth0\"} 3");
    LINE(o, "node_arp_entries{device=\"nope\"} 1");
    LINE(o, "node_arp_entries{device=\"bond0\"} 1");
    LINE(o, "node_bonding_slaves{master=\"bond0\"} 3");
    LINE(o, "node_bonding_active{master=\"bond0\"} 2");
    LINE(o, "node_bonding_slaves{master=\"int0\"} 1");
    LINE(o, "node_bonding_active{master=\"int0\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"bonding\"} 1");
    free(o);
}

static void test_netstat_family(void **state)
{
    (void)state;
    char *o = render();
    LINE(o, "# TYPE node_netstat_Tcp_InSegs untyped");
    LINE(o, "# HELP node_netstat_Tcp_InSegs Statistic TcpInSegs.");
    LINE(o, "node_netstat_Tcp_InSegs 57252008");
    LINE(o, "node_netstat_Tcp_CurrEstab 0");
    LINE(o, "node_netstat_Tcp_InErrs 5");
    LINE(o, "node_netstat_Ip_Forwarding 1");
    LINE(o, "node_netstat_IpExt_InOctets 6286396970");
    LINE(o, "node_netstat_IpExt_OutOctets 2786264347");
    LINE(o, "node_netstat_TcpExt_ListenOverflows 5");
    LINE(o, "node_netstat_TcpExt_ListenDrops 6");
    LINE(o, "node_netstat_TcpExt_SyncookiesRecv 1");
    LINE(o, "node_netstat_TcpExt_TCPSynRetrans 8");
    LINE(o, "node_netstat_Icmp_InMsgs 104");
    LINE(o, "node_netstat_Udp_RcvbufErrors 9");
    LINE(o, "node_netstat_UdpLite_InErrors 0");
    LINE(o, "node_netstat_Ip6_InOctets 20100");
    LINE(o, "node_netstat_Icmp6_InErrors 1");
    LINE(o, "node_netstat_Udp6_NoPorts 2");
    LINE(o, "node_netstat_UdpLite6_InErrors 6");
    /* outside the default whitelist */
    NO(o, "node_netstat_Tcp_MaxConn");
    NO(o, "node_netstat_TcpExt_EmbryonicRsts");
    NO(o, "node_netstat_Ip6_InReceives");
    NO(o, "node_netstat_Ip_DefaultTTL");
    /* sockstat */
    LINE(o, "# TYPE node_sockstat_TCP_inuse gauge");
    LINE(o, "node_sockstat_sockets_used 229");
    LINE(o, "node_sockstat_TCP_inuse 4");
    LINE(o, "node_sockstat_TCP_orphan 0");
    LINE(o, "node_sockstat_TCP_tw 4");
    LINE(o, "node_sockstat_TCP_alloc 17");
    LINE(o, "node_sockstat_TCP_mem 1");
    char l[128];
    snprintf(l, sizeof l, "node_sockstat_TCP_mem_bytes %ld", sysconf(_SC_PAGESIZE));
    LINE(o, l);
    LINE(o, "node_sockstat_UDP_mem_bytes 0");
    LINE(o, "node_sockstat_FRAG_memory 0");
    LINE(o, "node_sockstat_TCP6_inuse 17");
    LINE(o, "node_sockstat_RAW6_inuse 1");
    LINE(o, "node_sockstat_FRAG6_memory 0");
    /* softnet: hex, labelled by line as node_exporter 1.5 does (not by the
     * CPU id newer kernels print in column 13) */
    LINE(o, "# TYPE node_softnet_processed_total counter");
    LINE(o, "node_softnet_processed_total{cpu=\"0\"} 299641");
    LINE(o, "node_softnet_processed_total{cpu=\"1\"} 916354");
    LINE(o, "node_softnet_dropped_total{cpu=\"1\"} 41");
    LINE(o, "node_softnet_times_squeezed_total{cpu=\"1\"} 10");
    NO(o, "node_softnet_processed_total{cpu=\"2\"}");
    /* conntrack: counts, and the per-CPU stat columns summed */
    LINE(o, "node_nf_conntrack_entries 123");
    LINE(o, "node_nf_conntrack_entries_limit 65536");
    LINE(o, "node_nf_conntrack_stat_found 3");
    LINE(o, "node_nf_conntrack_stat_invalid 10");
    LINE(o, "node_nf_conntrack_stat_ignore 12");
    LINE(o, "node_nf_conntrack_stat_insert 10");
    LINE(o, "node_nf_conntrack_stat_insert_failed 4");
    LINE(o, "node_nf_conntrack_stat_drop 14");
    LINE(o, "node_nf_conntrack_stat_early_drop 6");
    LINE(o, "node_nf_conntrack_stat_search_restart 8");
    /* udp_queues: tx_queue:rx_queue summed */
    LINE(o, "node_udp_queues{queue=\"tx\",ip=\"v4\"} 22");
    LINE(o, "node_udp_queues{queue=\"rx\",ip=\"v4\"} 3");
    LINE(o, "node_udp_queues{queue=\"tx\",ip=\"v6\"} 0");
    LINE(o, "node_udp_queues{queue=\"rx\",ip=\"v6\"} 256");
    free(o);
}

static void test_nvme_mdadm_infiniband(void **state)
{
    (void)state;
    char *o = render();
    LINE(o, "# TYPE node_nvme_info gauge");
    LINE(o, "node_nvme_info{device=\"nvme0\",firmware_revision=\"1B2QEXM7\",model=\"Samsung SSD 970 PRO 512GB\","
            "serial=\"S680HF8N190894I\",state=\"live\"} 1");
    /* mdadm: a healthy raid6 with spares */
    LINE(o, "node_md_state{device=\"md3\",state=\"active\"} 1");
    LINE(o, "node_md_disks{device=\"md3\",state=\"active\"} 8");
    LINE(o, "node_md_disks{device=\"md3\",state=\"spare\"} 2");
    LINE(o, "node_md_disks_required{device=\"md3\"} 8");
    LINE(o, "node_md_blocks{device=\"md3\"} 5853468288");
    LINE(o, "node_md_blocks_synced{device=\"md3\"} 5853468288");
    /* inactive */
    LINE(o, "node_md_state{device=\"md4\",state=\"inactive\"} 1");
    LINE(o, "node_md_disks{device=\"md4\",state=\"failed\"} 1");
    LINE(o, "node_md_disks_required{device=\"md4\"} 0");
    /* recovering: degraded [2/1], synced from the progress line */
    LINE(o, "node_md_state{device=\"md6\",state=\"recovering\"} 1");
    LINE(o, "node_md_state{device=\"md6\",state=\"active\"} 0");
    LINE(o, "node_md_disks{device=\"md6\",state=\"active\"} 1");
    LINE(o, "node_md_blocks_synced{device=\"md6\"} 16775552");
    LINE(o, "node_md_state{device=\"md8\",state=\"resync\"} 1");
    /* bitmap line skipped; DELAYED / PENDING: nothing synced yet */
    LINE(o, "node_md_disks{device=\"md7\",state=\"active\"} 3");
    LINE(o, "node_md_blocks_synced{device=\"md7\"} 7813735424");
    LINE(o, "node_md_blocks_synced{device=\"md9\"} 0");
    LINE(o, "node_md_disks{device=\"md9\",state=\"failed\"} 2");
    LINE(o, "node_md_blocks_synced{device=\"md11\"} 0");
    LINE(o, "node_md_state{device=\"md12\",state=\"check\"} 1");
    LINE(o, "node_md_blocks_synced{device=\"md12\"} 932730240");
    /* raid0 / linear: disks counted on the device line */
    LINE(o, "node_md_disks_required{device=\"md10\"} 2");
    LINE(o, "node_md_blocks{device=\"md10\"} 314159265");
    LINE(o, "node_md_disks{device=\"md120\",state=\"active\"} 2");
    /* infiniband */
    LINE(o, "node_infiniband_info{device=\"mlx4_0\",board_id=\"SM_1141000001000\",firmware_version=\"2.31.5050\","
            "hca_type=\"MT4099\"} 1");
    LINE(o, "node_infiniband_state_id{device=\"mlx4_0\",port=\"1\"} 4");
    LINE(o, "node_infiniband_physical_state_id{device=\"mlx4_0\",port=\"1\"} 5");
    LINE(o, "node_infiniband_rate_bytes_per_second{device=\"mlx4_0\",port=\"1\"} 5000000000");
    LINE(o, "node_infiniband_rate_bytes_per_second{device=\"mlx4_0\",port=\"2\"} 1250000000");
    LINE(o, "node_infiniband_state_id{device=\"mlx4_0\",port=\"2\"} 1");
    LINE(o, "# TYPE node_infiniband_port_data_received_bytes_total counter");
    LINE(o, "node_infiniband_port_data_received_bytes_total{device=\"mlx4_0\",port=\"1\"} 8884894436"); /* words * 4 */
    LINE(o, "node_infiniband_port_data_transmitted_bytes_total{device=\"mlx4_0\",port=\"1\"} 106036453180");
    LINE(o, "node_infiniband_legacy_data_received_bytes_total{device=\"mlx4_0\",port=\"1\"} 35539577744");
    LINE(o, "node_infiniband_legacy_multicast_packets_received_total{device=\"mlx4_0\",port=\"1\"} 93");
    LINE(o, "node_infiniband_port_transmit_wait_total{device=\"mlx4_0\",port=\"1\"} 3599");
    LINE(o, "node_infiniband_vl15_dropped_total{device=\"mlx4_0\",port=\"1\"} 0");
    NO(o, "node_infiniband_unicast_packets_received_total"); /* N/A (no PMA) */
    LINE(o, "node_infiniband_port_packets_received_total{device=\"mlx4_0\",port=\"2\"} 0");
    NO(o, "node_infiniband_port_transmit_wait_total{device=\"mlx4_0\",port=\"2\"}"); /* no such file */
    LINE(o, "node_scrape_collector_success{collector=\"infiniband\"} 1");
    LINE(o, "node_scrape_collector_success{collector=\"mdadm\"} 1");
    LINE(o, "node_scrape_collector_success{collector=\"nvme\"} 1");
    free(o);
}

static void test_xfs_btrfs_bcache(void **state)
{
    (void)state;
    char *o = render();
    /* xfs: per filesystem, every counter; "rw" is write then read */
    LINE(o, "# TYPE node_xfs_extent_allocation_blocks_allocated_total counter");
    LINE(o, "node_xfs_extent_allocation_extents_allocated_total{device=\"sda1\"} 1");
    LINE(o, "node_xfs_extent_allocation_blocks_allocated_total{device=\"sda1\"} 872");
    LINE(o, "node_xfs_block_mapping_reads_total{device=\"sda1\"} 61");
    LINE(o, "node_xfs_block_mapping_extent_list_lookups_total{device=\"sda1\"} 91");
    LINE(o, "node_xfs_directory_operation_getdents_total{device=\"sda1\"} 52");
    LINE(o, "node_xfs_write_calls_total{device=\"sda1\"} 28");
    LINE(o, "node_xfs_read_calls_total{device=\"sda1\"} 2");
    LINE(o, "node_xfs_vnode_active_total{device=\"sda1\"} 4");
    LINE(o, "node_xfs_vnode_release_total{device=\"sda1\"} 23");
    LINE(o, "node_xfs_vnode_remove_total{device=\"sda1\"} 23");
    LINE(o, "node_xfs_inode_operation_attempts_total{device=\"sda1\"} 5");
    LINE(o, "node_xfs_inode_operation_missed_total{device=\"sda1\"} 4");
    LINE(o, "node_xfs_inode_operation_attribute_changes_total{device=\"sda1\"} 1");
    NO(o, "node_xfs_read_calls_total{device=\"stats\"}");
    LINE(o, "node_scrape_collector_success{collector=\"xfs\"} 1");
    /* btrfs from sysfs */
    LINE(o, "node_btrfs_info{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",label=\"fixture\"} 1");
    LINE(o, "node_btrfs_global_rsv_size_bytes{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\"} 16777216");
    LINE(o, "node_btrfs_device_size_bytes{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",device=\"loop22\"} 10737418240"); /* sectors * 512 */
    LINE(o, "node_btrfs_reserved_bytes{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",block_group_type=\"metadata\"} 16384");
    LINE(o, "node_btrfs_used_bytes{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",block_group_type=\"data\",mode=\"raid5\"} 82833408");
    LINE(o, "node_btrfs_size_bytes{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",block_group_type=\"data\",mode=\"raid5\"} 644087808");
    LINE(o, "node_btrfs_allocation_ratio{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",block_group_type=\"data\",mode=\"raid5\"} 1.3333333333333333");
    LINE(o, "node_btrfs_allocation_ratio{uuid=\"0abb23a9-579b-43e6-ad30-227ef47fcb9d\",block_group_type=\"system\",mode=\"raid6\"} 2");
    NO(o, "uuid=\"features\"");
    /* bcache: human-readable sizes are powers of 1024 and the digit after
     * the point is read as procfs reads it ("1.5M" = 1560576), truncated */
    LINE(o, "node_bcache_cache_available_percent{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\"} 100");
    LINE(o, "node_bcache_btree_read_average_duration_seconds{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\"} 1.305e-06"); /* node_exporter 1.5 reads the us as ns */
    LINE(o, "# TYPE node_bcache_cache_read_races_total counter");
    LINE(o, "node_bcache_dirty_data_bytes{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 1560576");
    LINE(o, "node_bcache_bypassed_bytes_total{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 4096");
    LINE(o, "node_bcache_cache_hits_total{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 546");
    LINE(o, "node_bcache_cache_misses_total{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 3");
    LINE(o, "node_bcache_writeback_rate{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 1150976");
    LINE(o, "node_bcache_dirty_target_bytes{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 21894266880");
    LINE(o, "node_bcache_writeback_rate_proportional_term{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} -437748");
    LINE(o, "node_bcache_writeback_change{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",backing_device=\"bdev0\"} 329204");
    LINE(o, "node_bcache_written_bytes_total{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",cache_device=\"cache0\"} 2147483648");
    LINE(o, "node_bcache_metadata_written_bytes_total{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",cache_device=\"cache0\"} 512");
    LINE(o, "node_bcache_io_errors{uuid=\"deaddd54-c735-46d5-868e-f331c5fd7c74\",cache_device=\"cache0\"} 0");
    NO(o, "node_bcache_priority_stats"); /* off by default in node_exporter */
    free(o);
}

/* On the real system netdev takes one netlink dump: each counter must lie
 * between the sysfs readings taken just before and just after the scrape. */
static bool read_stat(const char *dev, const char *f, double *v)
{
    char p[512];
    snprintf(p, sizeof p, "/sys/class/net/%s/statistics/%s", dev, f);
    FILE *fp = fopen(p, "r");
    if (!fp)
        return false;
    bool ok = fscanf(fp, "%lf", v) == 1;
    fclose(fp);
    return ok;
}

static void test_netdev_netlink_real(void **state)
{
    (void)state;
    static const char *const devs[] = {"lo", "eth0"};
    static const char *const files[] = {"rx_bytes", "tx_packets", "rx_nohandler", "rx_dropped"};
    static const char *const fams[] = {"node_network_receive_bytes_total", "node_network_transmit_packets_total",
                                       "node_network_receive_nohandler_total", "node_network_receive_drop_total"};
    double before[2][4], after[2][4];
    bool have[2] = {true, true};
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < 4; f++)
            have[d] &= read_stat(devs[d], files[f], &before[d][f]);
    if (!have[0])
        skip(); /* no sysfs network view here */
    core_config cfg;
    core_config_defaults(&cfg);
    cfg.textfile_dir[0] = 0;
    sense_nx *x = NULL;
    char err[256];
    assert_int_equal(sense_nx_open(&x, &cfg, err, sizeof err), 0);
    nxt_text t = {0};
    assert_int_equal(sense_nx_render(x, nxt_emit, &t), 0);
    sense_nx_close(x);
    core_config_free(&cfg);
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < 4; f++)
            have[d] &= read_stat(devs[d], files[f], &after[d][f]);
    for (int d = 0; d < 2; d++) {
        if (!have[d])
            continue;
        for (int f = 0; f < 4; f++) {
            char series[256];
            snprintf(series, sizeof series, "%s{device=\"%s\"}", fams[f], devs[d]);
            double v = value_of(t.p, series);
            if (v < before[d][f] || v > after[d][f])
                fail_msg("%s = %.0f, sysfs said %.0f then %.0f", series, v, before[d][f], after[d][f]);
        }
    }
    LINE(t.p, "node_scrape_collector_success{collector=\"netdev\"} 1");
    free(t.p);
}

/* Garbage in every source: each collector says no (success 0) or reports
 * what it could, and the scrape itself never fails or crashes. */
static void put(const char *root, const char *rel, const char *body)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    mkdir(root, 0755);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    assert_int_equal(file_put(p, body), 0);
}

static void test_garbage(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-nxio-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char proc[300], sys[300];
    snprintf(proc, sizeof proc, "%s/proc", dir);
    snprintf(sys, sizeof sys, "%s/sys", dir);
    put(proc, "diskstats", "8 0\n   8 1 sdz 1 2 3\nxx yy zz\n");
    put(proc, "1/mounts", "onlyone\n/dev/x /\n\n");
    put(proc, "net/arp", "header\n1.2.3.4\n");
    put(proc, "net/netstat", "TcpExt: ListenDrops ListenOverflows\nTcpExt: 7\nIpExt: InOctets\n");
    put(proc, "net/snmp", "Tcp: InSegs\nUdp: 5\n");
    put(proc, "net/snmp6", "6\nIp6InOctets\n  \n");
    put(proc, "net/sockstat", "sockets: used\nTCP: inuse\nUDP inuse 3\n");
    put(proc, "net/softnet_stat", "zz 00 11\n");
    put(proc, "sys/net/netfilter/nf_conntrack_count", "many\n");
    put(proc, "net/udp", "hdr\n 0: x\n");
    put(proc, "mdstat", "md0 : active raid1 sda[0]\n");
    put(sys, "class/net/eth0/flags", "0xzz\n");
    put(sys, "class/net/eth0/operstate", "\n");
    put(sys, "class/net/bonding_masters", "bond0\n");
    put(sys, "class/infiniband/mlx0/fw_ver", "1\n");
    put(sys, "class/infiniband/mlx0/ports/1/state", "ACTIVE\n");
    put(sys, "class/nvme/nvme0/model", "x\n");
    put(sys, "fs/xfs/sdq/stats/stats", "extent_alloc 1\n");
    put(sys, "fs/btrfs/aaaa-bbbb/label", "x\n");
    put(sys, "fs/bcache/aaaa-bbbb/average_key_size", "1.5Q\n");
    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, sys);
    core_sncpy(cfg.udev_data_dir, sizeof cfg.udev_data_dir, dir);
    cfg.textfile_dir[0] = 0;
    sense_nx *x = NULL;
    char err[256];
    assert_int_equal(sense_nx_open(&x, &cfg, err, sizeof err), 0);
    nxt_text t = {0};
    assert_int_equal(sense_nx_render(x, nxt_emit, &t), 0);
    sense_nx_close(x);
    core_config_free(&cfg);
    tree_rm(dir);
    const char *o = t.p;
    /* malformed lines are skipped, sources that cannot be read fail */
    NO(o, "device=\"sdz\"");
    LINE(o, "node_scrape_collector_success{collector=\"diskstats\"} 1");
    NO(o, "node_filesystem_");
    LINE(o, "node_netstat_TcpExt_ListenDrops 7"); /* the fields that have a value */
    NO(o, "node_netstat_TcpExt_ListenOverflows");
    LINE(o, "node_scrape_collector_success{collector=\"softnet\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"conntrack\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"mdadm\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"bonding\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"infiniband\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"nvme\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"xfs\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"btrfs\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"bcache\"} 0");
    NO(o, "node_network_flags");
    LINE(o, "node_network_up{device=\"eth0\"} 0");
    free(t.p);
}

/* A container host's mount table: thousands of mounts, each listed twice,
 * each reported once. */
static void test_many_mounts(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-nxio-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char proc[300], path[400];
    snprintf(proc, sizeof proc, "%s/proc", dir);
    snprintf(path, sizeof path, "%s/1", proc);
    assert_int_equal(mkdir(proc, 0755), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/1/mounts", proc);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < 3000; i++)
            fprintf(f, "tmpfs /var/lib/kubelet/pods/%d/volumes/secret tmpfs rw,relatime 0 0\n", i);
    fclose(f);
    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, dir);
    cfg.textfile_dir[0] = 0;
    sense_nx *x = NULL;
    char err[256];
    assert_int_equal(sense_nx_open(&x, &cfg, err, sizeof err), 0);
    nxt_text t = {0};
    assert_int_equal(sense_nx_render(x, nxt_emit, &t), 0);
    sense_nx_close(x);
    core_config_free(&cfg);
    tree_rm(dir);
    int n = 0;
    for (const char *p = t.p; (p = strstr(p, "\nnode_filesystem_device_error{")); p++)
        n++;
    assert_int_equal(n, 3000);
    LINE(t.p, "node_filesystem_device_error{device=\"tmpfs\",fstype=\"tmpfs\","
              "mountpoint=\"/var/lib/kubelet/pods/2999/volumes/secret\"} 1");
    free(t.p);
}

/* A FUSE mount whose server never answers: its statfs blocks until the
 * connection is aborted, as a dead NFS server's does. The first scrape waits
 * out the 5 s mount timeout and reports node_filesystem_device_error 1; the
 * next skips the stuck mount at once. Runs in a child with its own mount
 * namespace so no other process on the machine meets the hung mount; needs
 * root and /dev/fuse (skipped otherwise). */
enum { HANG_OK = 0, HANG_SKIP = 77 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hang_child(const char *dir)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return HANG_SKIP;
    char mnt[300], proc[300], opts[128], path[400];
    snprintf(mnt, sizeof mnt, "%s/hung", dir);
    snprintf(proc, sizeof proc, "%s/proc", dir);
    if (mkdir(mnt, 0755) < 0)
        return 10;
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return HANG_SKIP;
    snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
    if (mount("ippoc-hang", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0)
        return HANG_SKIP;
    snprintf(path, sizeof path, "%s/1", proc);
    mkdir(proc, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/1/mounts", proc);
    if (file_putf(path, "ippoc-hang %s fuse rw,nosuid,nodev,relatime 0 0\n", mnt) < 0)
        return 11;
    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, dir);
    cfg.textfile_dir[0] = 0;
    sense_nx *x = NULL;
    char err[256], want[512];
    if (sense_nx_open(&x, &cfg, err, sizeof err) < 0)
        return 12;
    snprintf(want, sizeof want, "node_filesystem_device_error{device=\"ippoc-hang\",fstype=\"fuse\",mountpoint=\"%s\"} 1",
             mnt);
    int rc = HANG_OK;
    for (int round = 0; round < 2 && rc == HANG_OK; round++) {
        nxt_text t = {0};
        double t0 = now_s();
        if (sense_nx_render(x, nxt_emit_plain, &t) < 0)
            rc = 13;
        double took = now_s() - t0;
        if (rc == HANG_OK && !nxt_has_line(t.p, want))
            rc = 14 + round;
        if (rc == HANG_OK && round == 0 && (took < 4.5 || took > 30))
            rc = 16; /* waited out the mount timeout, no longer */
        if (rc == HANG_OK && round == 1 && took > 1.5)
            rc = 17; /* the stuck mount is skipped */
        free(t.p);
    }
    close(fd); /* aborts the connection: the stuck statfs returns */
    umount2(mnt, MNT_DETACH);
    sense_nx_close(x);
    core_config_free(&cfg);
    return rc;
}

static void test_hung_mount(void **state)
{
    (void)state;
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0)
        skip();
    char dir[] = "/tmp/ippoc-nxio-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(hang_child(dir));
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    tree_rm(dir);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == HANG_SKIP)
        skip();
    if (WEXITSTATUS(st) != HANG_OK)
        fail_msg("hung mount scenario failed at step %d", WEXITSTATUS(st));
}

/* Sources that are absent report what node_exporter reports: no families,
 * and success 0 where it returns "no data". */
static void test_absent_sources(void **state)
{
    (void)state;
    char *o = render_roots("empty", "empty", "empty");
    NO(o, "node_disk_");
    NO(o, "node_network_");
    NO(o, "node_nf_conntrack");
    NO(o, "node_bonding_");
    LINE(o, "node_scrape_collector_success{collector=\"bonding\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"conntrack\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"udp_queues\"} 0");
    NO(o, "node_md_");
    NO(o, "node_infiniband_");
    NO(o, "node_nvme_");
    NO(o, "node_xfs_");
    NO(o, "node_btrfs_");
    NO(o, "node_bcache_");
    LINE(o, "node_scrape_collector_success{collector=\"xfs\"} 1"); /* nothing mounted: not an error */
    LINE(o, "node_scrape_collector_success{collector=\"btrfs\"} 1");
    LINE(o, "node_scrape_collector_success{collector=\"bcache\"} 1");
    LINE(o, "node_scrape_collector_success{collector=\"mdadm\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"infiniband\"} 0");
    LINE(o, "node_scrape_collector_success{collector=\"nvme\"} 0");
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diskstats),
        cmocka_unit_test(test_filesystem),
        cmocka_unit_test(test_netdev_netclass),
        cmocka_unit_test(test_arp_bonding),
        cmocka_unit_test(test_netstat_family),
        cmocka_unit_test(test_nvme_mdadm_infiniband),
        cmocka_unit_test(test_xfs_btrfs_bcache),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_many_mounts),
        cmocka_unit_test(test_hung_mount),
        cmocka_unit_test(test_absent_sources),
        cmocka_unit_test(test_netdev_netlink_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
