/* fuzz_modelfile.c: the model description file parser and the one-line model descriptions
 * kept in checkpoints, on arbitrary text. */
#include <stdlib.h>
#include <string.h>

#include "models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    static struct layer_list layers; /* large: keep it off the stack */
    char err[256];
    model_file_parse(text, &layers, err, sizeof err);
    struct model_desc d;
    model_desc_parse(text, &d);
    free(text);
    return 0;
}
