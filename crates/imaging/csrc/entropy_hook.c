/*
 * entropy_hook.c: the glue that lets photobulk's own Huffman decoder
 * (src/huffman.rs) stand in for libjpeg-turbo's in a running decompressor.
 *
 * The fields it needs (the scan's MCU layout, the entropy decoder's method
 * pointer, `unread_marker`) are libjpeg internals that mozjpeg-sys does not
 * expose to Rust, so they are read and written here, by the C compiler that
 * knows their layout, against the very headers (jconfig.h included) that
 * libjpeg itself was built from (mozjpeg-sys exports them as DEP_JPEG_INCLUDE).
 * No decoding happens in C.
 */
#include <stddef.h>
#include <stdio.h>
#define JPEG_INTERNALS
#include "jpeglib.h"
#include "jpegcomp.h"

/*
 * The libjpeg headers this file was written and checked against: those of
 * mozjpeg-sys 2.2.3 (pinned with `=` in Cargo.toml), hashed by build.rs, which
 * passes the hash of the headers it compiles against as PB_LIBJPEG_HEADERS.
 * Another libjpeg may move or change the internals used below, so a different
 * hash is a compile error: re-check every field against the new headers, then
 * put the new value (build.rs prints it as a warning) here.
 */
#define PB_WRITTEN_AGAINST 0xc832b5f1725dc17cULL
#ifndef PB_LIBJPEG_HEADERS
#error "PB_LIBJPEG_HEADERS is not defined: build this file through crates/imaging/build.rs"
#endif
#if PB_LIBJPEG_HEADERS != PB_WRITTEN_AGAINST
#error "libjpeg's headers are not the ones entropy_hook.c was written against (see PB_WRITTEN_AGAINST)"
#endif
#if JPEG_LIB_VERSION != 62 || BITS_IN_JSAMPLE != 8
#error "entropy_hook.c is written for the libjpeg 6.2 ABI with 8-bit samples"
#endif

/* What the Rust decoder needs to know about the one scan of the file. */
struct pb_scan {
  int blocks_in_mcu;            /* blocks per MCU, <= D_MAX_BLOCKS_IN_MCU (10) */
  int block_comp[10];           /* per block: index of its component in the scan */
  int block_dc_tbl[10];         /* per block: DC Huffman table number (0..3) */
  int block_ac_tbl[10];         /* per block: AC Huffman table number (0..3) */
  int block_ac_needed[10];      /* per block: are the AC coefficients used (DCT size > 1) */
  unsigned int restart_interval;
  const JHUFF_TBL *dc_tables[4];
  const JHUFF_TBL *ac_tables[4];
};

/*
 * Call after jpeg_start_decompress. Returns 1 and fills `out` when the file is
 * what the Rust decoder handles: one sequential (baseline or extended)
 * Huffman-coded 8-bit scan holding every component, not read yet; 0 otherwise (libjpeg's own decoder then carries on).
 */
int pb_entropy_scan(j_decompress_ptr cinfo, struct pb_scan *out)
{
  int blkn, ci, n;

  if (cinfo->progressive_mode || cinfo->arith_code || cinfo->buffered_image ||
      cinfo->inputctl == NULL || cinfo->inputctl->has_multiple_scans ||
      cinfo->entropy == NULL || cinfo->data_precision != 8 ||
      cinfo->unread_marker != 0 ||
      cinfo->output_scanline != 0 || cinfo->input_iMCU_row != 0)
    return 0;
  if (cinfo->Ss != 0 || cinfo->Se != DCTSIZE2 - 1 || cinfo->Ah != 0 ||
      cinfo->Al != 0 || cinfo->comps_in_scan != cinfo->num_components)
    return 0;
  if (cinfo->blocks_in_MCU < 1 || cinfo->blocks_in_MCU > 10)
    return 0;
  out->blocks_in_mcu = cinfo->blocks_in_MCU;
  out->restart_interval = cinfo->restart_interval;
  for (blkn = 0; blkn < cinfo->blocks_in_MCU; blkn++) {
    jpeg_component_info *compptr;
    ci = cinfo->MCU_membership[blkn];
    if (ci < 0 || ci >= cinfo->comps_in_scan)
      return 0;
    compptr = cinfo->cur_comp_info[ci];
    if (compptr->dc_tbl_no < 0 || compptr->dc_tbl_no > 3 ||
        compptr->ac_tbl_no < 0 || compptr->ac_tbl_no > 3)
      return 0;
    out->block_comp[blkn] = ci;
    out->block_dc_tbl[blkn] = compptr->dc_tbl_no;
    out->block_ac_tbl[blkn] = compptr->ac_tbl_no;
    out->block_ac_needed[blkn] = compptr->_DCT_scaled_size > 1;
  }
  for (n = 0; n < 4; n++) {
    out->dc_tables[n] = cinfo->dc_huff_tbl_ptrs[n];
    out->ac_tables[n] = cinfo->ac_huff_tbl_ptrs[n];
  }
  return 1;
}

/* Replace the entropy decoder's per-MCU method. */
void pb_entropy_set_decode_mcu(j_decompress_ptr cinfo,
                               boolean (*decode_mcu) (j_decompress_ptr, JBLOCKROW *))
{
  cinfo->entropy->decode_mcu = decode_mcu;
}

/* Record a marker the entropy decoder ran into, as libjpeg's own does. */
void pb_entropy_set_unread_marker(j_decompress_ptr cinfo, int marker)
{
  cinfo->unread_marker = marker;
}

/*
 * At a restart boundary, with the source positioned just past the marker the
 * decoder ran into (and `unread_marker` set to it): libjpeg's own check that it
 * is the expected RSTn, and its resynchronisation (a warning) if not.
 */
boolean pb_entropy_read_restart_marker(j_decompress_ptr cinfo)
{
  return (*cinfo->marker->read_restart_marker) (cinfo);
}

/*
 * MCUs per row of the scan, and the MCU columns libjpeg transforms (its
 * jpeg_crop_scanline window; every column when there is none): the others are
 * entropy-decoded and dropped (decompress_onepass in jdcoefct.c).
 */
void pb_entropy_columns(j_decompress_ptr cinfo, unsigned int *per_row,
                        unsigned int *first, unsigned int *last)
{
  *per_row = cinfo->MCUs_per_row;
  *first = cinfo->master->first_iMCU_col;
  *last = cinfo->master->last_iMCU_col;
}
