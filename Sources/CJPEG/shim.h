#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <jpeglib.h>

/* libjpeg reports errors through a longjmp-ing error_exit, which Swift cannot catch: this C wrapper decodes a JPEG
   held in memory to packed RGB and returns 0, or returns -1 and leaves libjpeg's message in `message` (200 bytes).
   `pixels` is malloc'ed; the caller frees it. Images over `max_pixels` are refused before any pixel is decoded. */
struct sd3_jpeg_error { struct jpeg_error_mgr manager; jmp_buf jump; char *message; };

static void sd3_jpeg_error_exit(j_common_ptr info) {
    struct sd3_jpeg_error *error = (struct sd3_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

static void sd3_jpeg_silent(j_common_ptr info) { (void)info; }

static inline int sd3_jpeg_decode(const unsigned char *bytes, unsigned long count, unsigned long max_pixels,
                                  unsigned char **pixels, int *width, int *height, char *message) {
    struct jpeg_decompress_struct info;
    struct sd3_jpeg_error error;
    unsigned char *volatile out = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = sd3_jpeg_error_exit;
    error.manager.output_message = sd3_jpeg_silent;
    error.message = message;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, bytes, count);
    jpeg_read_header(&info, TRUE);
    if ((unsigned long)info.image_width * info.image_height > max_pixels) {
        snprintf(message, 200, "%ux%u pixels is more than the %lu allowed", info.image_width, info.image_height, max_pixels);
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
    jpeg_destroy_decompress(&info);
    return 0;
}
