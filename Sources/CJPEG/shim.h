#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg reports errors through a longjmp-ing error_exit, which Swift cannot catch: this C wrapper decodes a JPEG
   held in memory to packed RGB and returns 0, or returns -1 and leaves libjpeg's message in `message` (200 bytes).
   `pixels` is malloc'ed; the caller frees it. Images over `max_pixels` are refused before any pixel is decoded.
   `truncated` is set when the data ended early: inside the image (libjpeg then fills the rest with grey and warns),
   or before the error returned. */
struct sd3_jpeg_error { struct jpeg_error_mgr manager; jmp_buf jump; char *message; volatile int truncated; };

static void sd3_jpeg_error_exit(j_common_ptr info) {
    struct sd3_jpeg_error *error = (struct sd3_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

static void sd3_jpeg_silent(j_common_ptr info) { (void)info; }

/* Warnings are not printed; the one that says the data ended early is remembered. */
static void sd3_jpeg_emit(j_common_ptr info, int level) {
    struct sd3_jpeg_error *error = (struct sd3_jpeg_error *)info->err;
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) error->truncated = 1;
}

static inline int sd3_jpeg_decode(const unsigned char *bytes, unsigned long count, unsigned long max_pixels,
                                  unsigned char **pixels, int *width, int *height, int *truncated, char *message) {
    struct jpeg_decompress_struct info;
    struct sd3_jpeg_error error;
    unsigned char *volatile out = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = sd3_jpeg_error_exit;
    error.manager.output_message = sd3_jpeg_silent;
    error.manager.emit_message = sd3_jpeg_emit;
    error.message = message;
    error.truncated = 0;
    if (setjmp(error.jump)) {
        /* An error after the data ran out (libjpeg then reads its fake end marker as header fields) is the cut's. */
        *truncated = error.truncated;
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, bytes, count);
    jpeg_read_header(&info, TRUE);
    if ((unsigned long)info.image_width * info.image_height > max_pixels) {
        snprintf(message, 200, "%ux%u pixels is more than the %lu-megapixel limit", info.image_width, info.image_height, max_pixels >> 20);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    /* libjpeg has no CMYK to RGB conversion. */
    if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        snprintf(message, 200, "a CMYK JPEG, which is not supported: save it as RGB");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = JCS_RGB;
    jpeg_start_decompress(&info);
    size_t row = (size_t)info.output_width * 3;
    out = malloc(row * info.output_height);
    if (!out) { snprintf(message, 200, "out of memory"); jpeg_destroy_decompress(&info); return -1; }
    while (info.output_scanline < info.output_height) {
        unsigned char *line = out + row * info.output_scanline;
        jpeg_read_scanlines(&info, &line, 1);
    }
    jpeg_finish_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    *pixels = out;
    *truncated = error.truncated;
    jpeg_destroy_decompress(&info);
    return 0;
}
