# ferry_layer(NAME DIR DEPS...): one folder = one layer = one static library.
# Sources are globbed so that adding a file needs no CMake edit; a folder with
# no sources yet becomes an interface library so that dependents still link.
function(ferry_layer name dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.c)
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_link_libraries(${name} PUBLIC ${ARGN})
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${ARGN})
  endif()
endfunction()
