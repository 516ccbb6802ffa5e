/*
 * api.h - the bracket around every core header's declarations: hidden
 * visibility, so a shared module built from the core exports nothing of it
 * even when a build passes no -fvisibility, and C linkage for C++.
 */
#ifndef LAYER_API_H
#define LAYER_API_H

#if defined(__GNUC__)
#define LAYER_HIDE_BEGIN _Pragma("GCC visibility push(hidden)")
#define LAYER_HIDE_END _Pragma("GCC visibility pop")
#else
#define LAYER_HIDE_BEGIN
#define LAYER_HIDE_END
#endif

#ifdef __cplusplus
#define LAYER_BEGIN_DECLS LAYER_HIDE_BEGIN extern "C" {
#define LAYER_END_DECLS } LAYER_HIDE_END
#else
#define LAYER_BEGIN_DECLS LAYER_HIDE_BEGIN
#define LAYER_END_DECLS LAYER_HIDE_END
#endif

#endif
