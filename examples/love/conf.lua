-- conf.lua: the LÖVE window for the chat example (main.lua). No audio: the
-- game makes no sound, and CI's Xvfb has no sound card to open.
function love.conf(t)
  t.identity = "layer-chat-example"
  t.version = "11.4"
  t.window.title = "Layer chat (LÖVE)"
  t.window.width = 800
  t.window.height = 600
  t.window.vsync = 1
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
end
