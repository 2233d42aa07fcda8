#define HEADER_SIZE 8
struct header { int version; };
int read_magic(const unsigned char *, struct header *);
