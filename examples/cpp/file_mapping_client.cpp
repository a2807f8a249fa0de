// CppFileMappingClient: opens the named shared memory Local\HelloWorld read-only and
// prints the C string the server wrote at its start.
//
// Usage: file_mapping_client [NAME]
#include <cstdio>
#include <string>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "Local\\HelloWorld";
    ProcwireMapping* raw = nullptr;
    procwire::check(procwire_mapping_open(name, PROCWIRE_ACCESS_READ, &raw), "procwire_mapping_open");
    procwire::Mapping mapping(raw);
    std::printf("The file mapping (%s) is opened\n", name);

    // A copy out of shared memory (another process may write meanwhile), up to the NUL.
    char view[1024];
    procwire::check(procwire_mapping_read(mapping.get(), 0, reinterpret_cast<uint8_t*>(view),
                                          sizeof view),
                    "procwire_mapping_read");
    view[sizeof view - 1] = '\0';
    std::printf("Read from the file mapping:\n\"%s\"\n", view);
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
