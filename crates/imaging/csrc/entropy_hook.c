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

/*
 * The DC preview (src/huffman.rs, `DcPreview`): a 1/8-scale decode of a
 * YCbCr 4:2:0 file whose rows are skipped (jpeg_skip_scanlines, which hands
 * the entropy decoder a null MCU) while photobulk computes their pixels from
 * the coefficients itself. Returns 1 and fills `out` only for exactly the
 * layout that code handles (checked after jpeg_start_decompress at scale 1/8,
 * before any row): three components in one interleaved scan in component
 * order, luma 2x2-sampled at DCT size 1, chroma 1x1-sampled at DCT size 2
 * (so no upsampling: libjpeg's fullsize_upsample), YCbCr to RGB, no crop, no
 * quantisation. The quantisation tables are those the IDCTs use (dct_table,
 * ISLOW_MULT_TYPE = MULTIPLIER, 16 bits with SIMD; natural order).
 */
struct pb_dc {
  unsigned int mcus_per_row;
  unsigned int mcu_rows;
  unsigned int output_width;
  unsigned int output_height;
  int quant[3][64];
};

int pb_dc_layout(j_decompress_ptr cinfo, struct pb_dc *out)
{
  int ci, i;
  static const int membership[6] = { 0, 0, 0, 0, 1, 2 };

  if (sizeof(MULTIPLIER) != 2)
    return 0;
  if (cinfo->num_components != 3 || cinfo->comps_in_scan != 3 ||
      cinfo->jpeg_color_space != JCS_YCbCr || cinfo->out_color_space != JCS_RGB ||
      cinfo->out_color_components != 3 || cinfo->output_components != 3 ||
      cinfo->quantize_colors || cinfo->raw_data_out ||
      cinfo->blocks_in_MCU != 6 || cinfo->max_h_samp_factor != 2 ||
      cinfo->max_v_samp_factor != 2 || cinfo->_min_DCT_scaled_size != 1 ||
      cinfo->output_scanline != 0 || cinfo->upsample == NULL ||
      cinfo->upsample->need_context_rows || cinfo->cconvert == NULL ||
      cinfo->idct == NULL || cinfo->master == NULL ||
      cinfo->master->first_iMCU_col != 0 ||
      cinfo->master->last_iMCU_col + 1 != cinfo->MCUs_per_row)
    return 0;
  for (i = 0; i < 6; i++)
    if (cinfo->MCU_membership[i] != membership[i])
      return 0;
  for (ci = 0; ci < 3; ci++) {
    jpeg_component_info *c = &cinfo->comp_info[ci];
    int size = ci == 0 ? 1 : 2;
    int samp = ci == 0 ? 2 : 1;
    /* ISLOW_MULT_TYPE (jdct.h) is MULTIPLIER: short where libjpeg has SIMD. */
    const MULTIPLIER *q = (const MULTIPLIER *)c->dct_table;
    if (cinfo->cur_comp_info[ci] != c || c->h_samp_factor != samp ||
        c->v_samp_factor != samp || c->_DCT_scaled_size != size ||
        !c->component_needed || q == NULL ||
        c->downsampled_width != cinfo->output_width)
      return 0;
    for (i = 0; i < 64; i++)
      out->quant[ci][i] = q[i];
  }
  if (cinfo->output_width > 2 * cinfo->MCUs_per_row ||
      cinfo->output_height > 2 * cinfo->total_iMCU_rows)
    return 0;
  out->mcus_per_row = cinfo->MCUs_per_row;
  out->mcu_rows = cinfo->total_iMCU_rows;
  out->output_width = cinfo->output_width;
  out->output_height = cinfo->output_height;
  return 1;
}

/*
 * One row of Y, Cb and Cr samples (output_width each, readable up to a
 * multiple of 64 past it) to RGB through libjpeg's own colour deconverter
 * (the very function jpeg_read_scanlines would use, SIMD included).
 */
void pb_dc_color_row(j_decompress_ptr cinfo, JSAMPROW y, JSAMPROW cb,
                     JSAMPROW cr, JSAMPROW rgb)
{
  JSAMPROW rows[3];
  JSAMPARRAY planes[3];
  rows[0] = y;
  rows[1] = cb;
  rows[2] = cr;
  planes[0] = &rows[0];
  planes[1] = &rows[1];
  planes[2] = &rows[2];
  (*cinfo->cconvert->color_convert) (cinfo, planes, 0, &rgb, 1);
}
